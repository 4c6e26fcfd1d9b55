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

  /**
   * Rejects when `schema` is not a usable JSON schema. node-llama-cpp compiles a subset of JSON Schema
   * and turns what it does not understand into "any value" or even "null" without a word, so the
   * structure is checked here first (`schemaProblem`).
   */
  get(schema: JsonSchema): Promise<LlamaGrammar> {
    const problem = schemaProblem(schema, "schema");
    if (problem !== undefined) return Promise.reject(new Error(problem));
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

const JSON_TYPES = new Set(["string", "number", "integer", "boolean", "object", "array", "null"]);
const SUBSCHEMA_LISTS = ["anyOf", "oneOf", "allOf", "prefixItems"] as const;
const SUBSCHEMA_MAPS = ["properties", "$defs", "definitions"] as const;

/** What makes `schema` unusable (at `path`), or undefined: types, enums and nested schemas are checked. */
export function schemaProblem(schema: unknown, path: string): string | undefined {
  if (typeof schema === "boolean") return undefined;
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return `${path} is not an object`;
  const record = schema as Record<string, unknown>;
  const types = Array.isArray(record.type)
    ? (record.type as unknown[])
    : record.type === undefined
      ? []
      : [record.type];
  const unknownType = types.find((type) => typeof type !== "string" || !JSON_TYPES.has(type));
  if (unknownType !== undefined) return `${path}.type ${JSON.stringify(unknownType)} is not a JSON type`;
  if (record.enum !== undefined && (!Array.isArray(record.enum) || record.enum.length === 0)) {
    return `${path}.enum must be a non-empty list`;
  }
  for (const key of SUBSCHEMA_LISTS) {
    const list = record[key];
    if (list === undefined) continue;
    if (!Array.isArray(list) || (key !== "prefixItems" && list.length === 0))
      return `${path}.${key} must be a non-empty list`;
    for (const [index, item] of list.entries()) {
      const problem = schemaProblem(item, `${path}.${key}[${index}]`);
      if (problem !== undefined) return problem;
    }
  }
  for (const key of SUBSCHEMA_MAPS) {
    const map = record[key];
    if (map === undefined) continue;
    if (typeof map !== "object" || map === null || Array.isArray(map)) return `${path}.${key} is not an object`;
    for (const [name, item] of Object.entries(map)) {
      const problem = schemaProblem(item, `${path}.${key}.${name}`);
      if (problem !== undefined) return problem;
    }
  }
  for (const key of ["items", "additionalProperties"] as const) {
    if (record[key] === undefined) continue;
    const problem = schemaProblem(record[key], `${path}.${key}`);
    if (problem !== undefined) return problem;
  }
  return undefined;
}
