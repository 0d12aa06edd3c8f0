/** A small query hook over the page's GraphQL client. */
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { createContext } from "preact";
import { useContext, useEffect, useState } from "preact/hooks";
import type { Api, Problem } from "./client";

export const ApiContext = createContext<Api | null>(null);

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
  const [loading, setLoading] = useState(!pause);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    if (pause) {
      setLoading(false);
      return;
    }
    let current = true;
    setLoading(true);
    void api.run(document, variables).then((result) => {
      if (!current) return;
      setProblem(result.problem);
      if (result.data !== undefined) setData(result.data);
      setLoading(false);
    });
    return () => {
      current = false;
    };
    // `key` stands for `variables`: callers build it from exactly the values they pass.
  }, [api, document, key, attempt, pause]);

  return { data, problem, loading, reload: () => setAttempt((n) => n + 1) };
}
