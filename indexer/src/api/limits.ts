/**
 * What a query may ask for. graphql-armor refuses deep, alias-heavy, token-heavy and costly
 * documents before they run (fragments included); the list-size plugin below refuses a `first`
 * above the cap, and any query whose nested lists could return more items than `maxNodes`
 * (`providers(first: 1000) { sessions(first: 1000) }` is a million), counting `first` from
 * literals, variables and defaults alike, through fragments.
 */
import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import type { Plugin } from "@envelop/core";
import {
  type DocumentNode,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
  valueFromASTUntyped,
} from "graphql";
import type { IndexerConfig } from "../config.js";

type ApiLimits = IndexerConfig["api"];

/** The armor protections, with their limits shown in the errors (a client must know what to change). */
export function armorPlugin(limits: ApiLimits, dev: boolean) {
  return EnvelopArmorPlugin({
    maxDepth: { n: limits.maxDepth, flattenFragments: true, exposeLimits: true },
    maxAliases: { n: limits.maxAliases, exposeLimits: true },
    maxTokens: { n: limits.maxTokens, exposeLimits: true },
    maxDirectives: { n: 20, exposeLimits: true },
    costLimit: { maxCost: limits.maxCost, exposeLimits: true },
    // Field suggestions ("did you mean …") help in development and map the schema for attackers.
    blockFieldSuggestion: { enabled: !dev },
  });
}

const DEFAULT_FIRST = 100;

export class ListSizeError extends GraphQLError {
  constructor(message: string) {
    super(message, { extensions: { code: "QUERY_TOO_LARGE" } });
  }
}

/** The most list items `selectionSet` can return, refusing any `first` above `maxFirst` on the way. */
export function estimateListItems(
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
  maxFirst: number,
): number {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const firstOf = (value: ValueNode | undefined, path: string): number | undefined => {
    if (value === undefined) return undefined;
    const resolved = valueFromASTUntyped(value, variables);
    if (resolved === null || resolved === undefined) return undefined;
    if (typeof resolved !== "number") return undefined; // the schema's validation reports the type error
    if (resolved > maxFirst) throw new ListSizeError(`first must be at most ${maxFirst} (got ${resolved} at ${path})`);
    return resolved;
  };
  const walk = (selectionSet: SelectionSetNode | undefined, path: string, seen: ReadonlySet<string>): number => {
    if (selectionSet === undefined) return 0;
    let total = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        const name = selection.alias?.value ?? selection.name.value;
        const fieldPath = path === "" ? name : `${path}.${name}`;
        const firstArgument = selection.arguments?.find((argument) => argument.name.value === "first");
        const isList = firstArgument !== undefined || selection.selectionSet?.selections.some(isItemsField);
        const first = firstOf(firstArgument?.value, fieldPath) ?? (isList ? DEFAULT_FIRST : 1);
        const children = walk(selection.selectionSet, fieldPath, seen);
        total += isList ? first * (1 + children) : children;
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        total += walk(selection.selectionSet, path, seen);
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        // A fragment that spreads itself is refused by validation; do not loop on it here.
        if (fragment !== undefined && !seen.has(name))
          total += walk(fragment.selectionSet, path, new Set([...seen, name]));
      }
    }
    return total;
  };
  return walk(operation.selectionSet, "", new Set());
}

/** A page's `items` (lists without `first` use the default page size). */
function isItemsField(selection: SelectionSetNode["selections"][number]): boolean {
  return selection.kind === Kind.FIELD && selection.name.value === "items";
}

export function listSizePlugin(limits: ApiLimits): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const document = args.document as DocumentNode;
      const operation = document.definitions.find(
        (definition): definition is OperationDefinitionNode =>
          definition.kind === Kind.OPERATION_DEFINITION &&
          (args.operationName == null || definition.name?.value === args.operationName),
      );
      if (operation === undefined) return;
      try {
        const items = estimateListItems(
          document,
          operation,
          (args.variableValues ?? {}) as Record<string, unknown>,
          limits.maxFirst,
        );
        if (items > limits.maxNodes) {
          throw new ListSizeError(
            `the query could return ${items} list items, more than the limit of ${limits.maxNodes}: ask for smaller pages (first)`,
          );
        }
      } catch (error) {
        if (!(error instanceof ListSizeError)) throw error;
        setResultAndStopExecution({ errors: [error] });
      }
    },
  };
}
