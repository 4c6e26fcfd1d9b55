/**
 * Turns a request's prompt into the tokens the model evaluates. Chat prompts go through the chat
 * wrapper resolved once, at load, from the GGUF's own template (resolving per request costs hundreds of
 * milliseconds: TOOLCHAIN.md); text prompts are tokenized as plain text. Message content is never
 * parsed for special tokens, so a user cannot forge `<|im_start|>system`.
 */
import {
  type ChatHistoryItem,
  type ChatWrapper,
  LlamaText,
  type LlamaModel,
  type SpecializedChatWrapperTypeName,
  type Token,
  resolveChatWrapper,
} from "node-llama-cpp";

import type { ChatMessage, Prompt } from "../backend.js";

export interface TemplatedPrompt {
  tokens: Token[];
  /** Text after which the chat format says the answer is over (e.g. a literal "<|im_end|>"). */
  stopStrings: string[];
  /** Tokens that end the answer besides the model's end-of-generation tokens. */
  stopTokens: ReadonlySet<Token>;
}

const NO_TOKENS: ReadonlySet<Token> = new Set();

export class PromptTemplater {
  readonly chatWrapper: ChatWrapper;

  /** `wrapper` forces a chat format; by default it is the one the GGUF's `tokenizer.chat_template` describes. */
  constructor(
    private readonly model: LlamaModel,
    wrapper?: SpecializedChatWrapperTypeName,
  ) {
    this.chatWrapper = resolveChatWrapper(model, { type: wrapper ?? "auto", warningLogs: false });
  }

  render(prompt: Prompt): TemplatedPrompt {
    if (prompt.kind === "text") {
      const tokens = this.model.tokenize(prompt.text, false);
      const bos = this.model.tokens.bos;
      if (this.model.tokens.shouldPrependBosToken && bos !== null && tokens[0] !== bos) tokens.unshift(bos);
      return { tokens, stopStrings: [], stopTokens: NO_TOKENS };
    }
    const state = this.chatWrapper.generateContextState({ chatHistory: toChatHistory(prompt.messages) });
    const stopStrings: string[] = [];
    const stopTokens = new Set<Token>();
    for (const trigger of state.stopGenerationTriggers) {
      if (trigger.values.every((value) => typeof value === "string")) stopStrings.push(trigger.toString());
      else {
        const tokens = trigger.tokenize(this.model.tokenizer);
        // A multi-token special sequence would need token-level matching; the formats node-llama-cpp knows end on one token.
        if (tokens.length === 1) stopTokens.add(tokens[0]!);
      }
    }
    return { tokens: state.contextText.tokenize(this.model.tokenizer), stopStrings, stopTokens };
  }
}

/** OpenAI-style messages as node-llama-cpp's chat history, ending with an open assistant turn. */
function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = messages.map((message) => {
    if (message.role === "system") return { type: "system", text: LlamaText(message.content).toJSON() };
    if (message.role === "user") return { type: "user", text: message.content };
    return { type: "model", response: [message.content] };
  });
  // The wrapper leaves the last model turn open; an assistant message last is a prefix to continue.
  if (history.at(-1)?.type !== "model") history.push({ type: "model", response: [] });
  return history;
}
