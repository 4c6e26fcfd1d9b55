/** Streaming text: stop strings across chunks, and tokens that split UTF-8 characters. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { StopStringMatcher } from "../src/inference/text/stop-string-matcher.js";
import { TokenTextDecoder } from "../src/inference/text/token-text-decoder.js";

void describe("StopStringMatcher", () => {
  void it("holds back a possible stop string and drops it once complete", () => {
    const matcher = new StopStringMatcher(["</end>"]);
    assert.deepEqual(matcher.push("Hello <"), { text: "Hello ", stopped: false });
    assert.deepEqual(matcher.push("/en"), { text: "", stopped: false });
    assert.deepEqual(matcher.push("d>tail"), { text: "", stopped: true });
  });

  void it("releases held text that turns out not to be a stop string", () => {
    const matcher = new StopStringMatcher(["STOP"]);
    assert.deepEqual(matcher.push("ST"), { text: "", stopped: false });
    assert.deepEqual(matcher.push("ART"), { text: "START", stopped: false });
    assert.deepEqual(matcher.push("xST"), { text: "x", stopped: false });
    assert.equal(matcher.flush(), "ST");
  });

  void it("stops at the earliest of several stop strings and ignores empty ones", () => {
    const matcher = new StopStringMatcher(["", "world", "lo w"]);
    assert.deepEqual(matcher.push("hello world"), { text: "hel", stopped: true });
  });

  void it("never splits a surrogate pair when holding back", () => {
    const matcher = new StopStringMatcher(["\uDE00x"]);
    const { text } = matcher.push("a😀");
    assert.equal(text, "a");
    assert.equal(matcher.flush(), "😀");
  });
});

void describe("TokenTextDecoder", () => {
  // One token per byte, like the tiny model's vocabulary; invalid sequences decode to U+FFFD.
  const decodeBytes = (tokens: readonly number[]): string => Buffer.from(tokens).toString("utf8");

  void it("yields nothing until a multi-byte character is complete", () => {
    const decoder = new TokenTextDecoder<number>((tokens) => decodeBytes(tokens), []);
    const euro = [...Buffer.from("€")];
    assert.deepEqual(
      euro.map((byte) => decoder.push(byte)),
      ["", "", "€"],
    );
    assert.equal(decoder.push(0x41), "A");
  });

  void it("gives U+FFFD for bytes that never form a character, and never throws", () => {
    const decoder = new TokenTextDecoder<number>((tokens) => decodeBytes(tokens), []);
    const out = [0x80, 0x80, 0x80, 0x80, 0xff, 0x41].map((byte) => decoder.push(byte));
    assert.ok(out.slice(0, 3).every((text) => text === ""));
    assert.equal(out[3], "\uFFFD\uFFFD\uFFFD\uFFFD");
    assert.equal(out.slice(4).join(""), "\uFFFDA");
    decoder.push(0xe2);
    assert.equal(decoder.flush(), "\uFFFD");
    assert.equal(decoder.flush(), "");
  });

  void it("passes the preceding tokens for context", () => {
    const seen: number[][] = [];
    const decoder = new TokenTextDecoder<number>(
      (tokens, preceding) => {
        seen.push([...preceding]);
        return decodeBytes(tokens);
      },
      [1, 2, 3],
    );
    decoder.push(0x61);
    decoder.push(0x62);
    assert.deepEqual(seen, [
      [1, 2, 3],
      [1, 2, 3, 0x61],
    ]);
  });
});
