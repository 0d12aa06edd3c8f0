/**
 * Live answers over the server's WebSocket (graphql-transport-ws, through the graphql-ws
 * client): a subscription's results arrive as the server pushes them, with no polling. The
 * bearer token goes in `connection_init`, as browsers cannot set headers on a WebSocket; a
 * connection closed with 4403 (token refused or revoked) is not retried.
 */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import { type Client, createClient } from "graphql-ws";
import { OFFLINE_MESSAGE, type Problem, rateLimited, tokenStore } from "./client";

export interface LiveSink<T> {
  next(data: T): void;
  problem(problem: Problem): void;
}

export interface Live {
  /** Start a subscription; the returned function stops it. */
  subscribe<T, V extends object>(
    document: TypedDocumentNode<T, V>,
    variables: V,
    sink: LiveSink<T>,
  ): () => void;
}

const FORBIDDEN = 4403;

function describe(error: unknown): Problem {
  if (Array.isArray(error)) {
    const first = error[0] as
      | { message?: string; extensions?: { code?: string; retryAfter?: number } }
      | undefined;
    if (first?.extensions?.code === "RATE_LIMITED") {
      return rateLimited(Math.max(1, Math.ceil(first.extensions.retryAfter ?? 60)));
    }
    return { kind: "refused", message: first?.message ?? "The server refused the live update." };
  }
  const code = (error as { code?: number } | null)?.code;
  if (code === FORBIDDEN) {
    return { kind: "refused", message: "Your session is no longer valid: sign up again." };
  }
  return { kind: "offline", message: OFFLINE_MESSAGE };
}

/** A live client for the server's own `/graphql` (one connection, opened when needed). */
export function createLive(): Live {
  const url = new URL("graphql", document.baseURI);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  let client: Client | null = null;
  let token: string | null = null;
  const connection = (): Client => {
    const current = tokenStore.get();
    if (client === null || current !== token) {
      void client?.dispose(); // another user: their connection is not ours
      token = current;
      client = createClient({
        url: url.toString(),
        lazy: true, // connected while a subscription runs, closed after
        connectionParams: () => (token ? { Authorization: `Bearer ${token}` } : {}),
        retryAttempts: 5,
        shouldRetry: (event) => (event as { code?: number } | null)?.code !== FORBIDDEN,
      });
    }
    return client;
  };
  return {
    subscribe(document, variables, sink) {
      return connection().subscribe(
        { query: print(document), variables: variables as Record<string, unknown> },
        {
          next: (result) => {
            if (result.errors?.length) sink.problem(describe(result.errors));
            else if (result.data) sink.next(result.data as never);
          },
          error: (error) => sink.problem(describe(error)),
          complete: () => undefined,
        },
      );
    },
  };
}
