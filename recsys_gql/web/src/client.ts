/**
 * The GraphQL client (graphql-request, typed by the documents GraphQL Code Generator writes
 * from schema.graphql) and the translation of its failures into sentences people can act on.
 * Every call goes to the server: no cache, no request sharing, so a read issued after a
 * rating always sees it.
 */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { ClientError, GraphQLClient } from "graphql-request";

export const TOKEN_KEY = "recsys-gql.token";

/** The bearer token kept in localStorage (null when signed out or storage is unavailable). */
export const tokenStore = {
  get(): string | null {
    try {
      return window.localStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  },
  set(token: string | null): void {
    try {
      if (token) window.localStorage.setItem(TOKEN_KEY, token);
      else window.localStorage.removeItem(TOKEN_KEY);
    } catch {
      /* private mode: the token lives only as long as the page */
    }
  },
};

export type Problem =
  | { kind: "rate-limited"; message: string; retryAfter: number }
  | { kind: "offline"; message: string }
  | { kind: "server"; message: string }
  | { kind: "refused"; message: string };

/** An answer: the data, or what went wrong (never both, never a thrown error). */
export type Result<T> = { data: T; problem?: undefined } | { data?: undefined; problem: Problem };

export interface Api {
  run<T, V extends object>(document: TypedDocumentNode<T, V>, variables: V): Promise<Result<T>>;
}

/** A client for the server's own `/graphql` (relative, so the page works under any prefix). */
export function createApi(fetchImpl?: typeof fetch): Api {
  const client = new GraphQLClient(new URL("graphql", document.baseURI).toString(), {
    fetch: fetchImpl ?? ((input, init) => window.fetch(input, init)),
    headers: (): Record<string, string> => {
      const token = tokenStore.get();
      return token ? { Authorization: `Bearer ${token}` } : {};
    },
  });
  return {
    async run<T, V extends object>(document: TypedDocumentNode<T, V>, variables: V) {
      try {
        const data = await client.request<T, V>({ document, variables } as never);
        return { data };
      } catch (error) {
        return { problem: describeError(error) };
      }
    },
  };
}

export const OFFLINE_MESSAGE =
  "Can't reach the recommendation server. It may be down or restarting — " +
  "check that it is running (make serve), then try again.";

function seconds(value: unknown): number | undefined {
  const n = typeof value === "string" ? Number(value) : value;
  return typeof n === "number" && Number.isFinite(n) && n > 0 ? Math.ceil(n) : undefined;
}

/** A refusal by the rate limit, waiting `wait` seconds. */
export function rateLimited(wait: number): Problem {
  return {
    kind: "rate-limited",
    retryAfter: wait,
    message: `Too many requests for now: the server asks to wait ${wait} s before retrying.`,
  };
}

/** What went wrong, in words a person can act on. */
export function describeError(error: unknown): Problem {
  if (!(error instanceof ClientError)) {
    return { kind: "offline", message: OFFLINE_MESSAGE }; // fetch itself failed
  }
  const { errors = [], status, headers } = error.response;
  const limited = errors.find((e) => e.extensions?.code === "RATE_LIMITED");
  if (limited || status === 429) {
    return rateLimited(
      seconds(limited?.extensions?.retryAfter) ?? seconds(headers?.get("Retry-After")) ?? 60,
    );
  }
  const first = errors[0];
  if (first?.extensions?.code === "TIMEOUT") {
    return { kind: "server", message: "The server took too long to answer. Please try again." };
  }
  if (first) return { kind: "refused", message: first.message };
  return {
    kind: "server",
    message: `The server answered with an error (HTTP ${status}). Please try again in a moment.`,
  };
}
