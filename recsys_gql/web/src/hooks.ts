/** A small query hook over the page's GraphQL client. */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { createContext } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import type { Api, Problem } from "./client";
import type { Live } from "./live";

export const ApiContext = createContext<Api | null>(null);

/** The live (WebSocket) client; null where the page has none (then views ask over HTTP). */
export const LiveContext = createContext<Live | null>(null);

export function useLive(): Live | null {
  return useContext(LiveContext);
}

export function useApi(): Api {
  const api = useContext(ApiContext);
  if (!api) throw new Error("no GraphQL client: wrap the page in <ApiContext.Provider>");
  return api;
}

export interface QueryState<T> {
  data: T | undefined;
  problem: Problem | undefined;
  loading: boolean;
  reload: () => void;
}

/**
 * Run `document` with `variables` whenever `key` changes (and on `reload`); `pause` skips it.
 * Keeps the previous data while a new answer is on its way, so lists do not flash empty; an
 * answer to an older key is dropped.
 */
export function useQuery<T, V extends object>(
  document: TypedDocumentNode<T, V>,
  variables: V,
  key: string,
  pause = false,
): QueryState<T> {
  const api = useApi();
  const [data, setData] = useState<T | undefined>(undefined);
  const [problem, setProblem] = useState<Problem | undefined>(undefined);
  const [attempt, setAttempt] = useState(0);
  // Which request the shown answer belongs to: `loading` is true from the very render that
  // changes `key`, not one render later when the effect starts the request.
  const wanted = `${attempt}:${key}`;
  const [settled, setSettled] = useState<string | null>(null);
  const loading = !pause && settled !== wanted;

  useEffect(() => {
    if (pause) return;
    let current = true;
    void api.run(document, variables).then((result) => {
      if (!current) return;
      setProblem(result.problem);
      if (result.data !== undefined) setData(result.data);
      setSettled(wanted);
    });
    return () => {
      current = false;
    };
    // `key` stands for `variables`: callers build it from exactly the values they pass.
  }, [api, document, wanted, pause]);

  return { data, problem, loading, reload: () => setAttempt((n) => n + 1) };
}

/**
 * Subscribe to `document` with `variables` while `key` is unchanged (a new key resubscribes;
 * `pause` or no live client: nothing). Each pushed result replaces the data; `loading` is
 * true until the first result for the current key.
 */
export function useSubscription<T, V extends object>(
  document: TypedDocumentNode<T, V>,
  variables: V,
  key: string,
  pause = false,
): QueryState<T> {
  const live = useLive();
  const [data, setData] = useState<T | undefined>(undefined);
  const [problem, setProblem] = useState<Problem | undefined>(undefined);
  const [attempt, setAttempt] = useState(0);
  const wanted = `${attempt}:${key}`;
  const [settled, setSettled] = useState<string | null>(null);
  const loading = !pause && live !== null && settled !== wanted;

  useEffect(() => {
    if (pause || live === null) return;
    return live.subscribe(document, variables, {
      next: (value) => {
        setProblem(undefined);
        setData(value);
        setSettled(wanted);
      },
      problem: (value) => {
        setProblem(value);
        setSettled(wanted);
      },
    });
    // `key` stands for `variables`, as in useQuery.
  }, [live, document, wanted, pause]);

  return { data, problem, loading, reload: () => setAttempt((n) => n + 1) };
}
