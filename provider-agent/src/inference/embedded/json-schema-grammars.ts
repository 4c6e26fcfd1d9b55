/**
 * Compiles JSON schemas into llama.cpp grammars, keeping the most recently used ones: a client that
 * sends the same `response_format` on every request pays for the compilation once.
 */
import type { GbnfJsonSchema, Llama, LlamaGrammar } from "node-llama-cpp";

import type { JsonSchema } from "../backend.js";

export class JsonSchemaGrammars {
  private readonly cache = new Map<string, Promise<LlamaGrammar>>();

  constructor(
    private readonly llama: Llama,
    private readonly capacity = 32,
  ) {}

  /** Rejects when node-llama-cpp cannot turn `schema` into a grammar (it supports a subset of JSON Schema). */
  get(schema: JsonSchema): Promise<LlamaGrammar> {
    const key = JSON.stringify(schema);
    const cached = this.cache.get(key);
    let grammar: Promise<LlamaGrammar>;
    if (cached) {
      this.cache.delete(key);
      grammar = cached;
    } else {
      // The schema comes from the request unchecked; node-llama-cpp rejects what it does not support.
      grammar = this.llama.createGrammarForJsonSchema<GbnfJsonSchema>(schema as GbnfJsonSchema);
      grammar.catch(() => this.cache.delete(key));
    }
    this.cache.set(key, grammar);
    if (this.cache.size > this.capacity) this.cache.delete(this.cache.keys().next().value!);
    return grammar;
  }
}
