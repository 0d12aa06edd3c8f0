/**
 * A stand-in for the server's `/graphql` in component tests: answers each operation by name
 * with what the test scripts, and records every request (body and headers).
 */
export interface Sent {
  operationName: string;
  variables: Record<string, unknown>;
  authorization: string | null;
}

export type Answer =
  | { data: unknown; status?: number; headers?: Record<string, string> }
  | { errors: unknown[]; status?: number; headers?: Record<string, string> }
  | "network-down";

export function fakeServer(answers: Record<string, Answer | ((v: Record<string, unknown>) => Answer)>) {
  const sent: Sent[] = [];
  const fetchImpl = async (_input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const body = JSON.parse(String(init?.body)) as {
      operationName: string;
      variables?: Record<string, unknown>;
    };
    const headers = new Headers(init?.headers);
    const variables = body.variables ?? {};
    sent.push({
      operationName: body.operationName,
      variables,
      authorization: headers.get("authorization"),
    });
    const scripted = answers[body.operationName];
    const answer = typeof scripted === "function" ? scripted(variables) : scripted;
    if (answer === undefined) throw new Error(`unscripted operation ${body.operationName}`);
    if (answer === "network-down") throw new TypeError("Failed to fetch");
    const { status = 200, headers: extra = {}, ...payload } = answer;
    return new Response(JSON.stringify(payload), {
      status,
      headers: { "content-type": "application/json", ...extra },
    });
  };
  return { fetch: fetchImpl as typeof fetch, sent };
}

export const movie = (id: number, title: string, genres = ["Animation", "Children"]) => ({
  id,
  title,
  year: 1995,
  genres,
  averageRating: 3.9,
});

export const HOME_ANSWER = {
  data: {
    genres: ["Animation", "Children", "Comedy", "Horror"],
    popularMovies: [movie(1, "Toy Story"), movie(2355, "Bug's Life, A")],
  },
};

export const rec = (id: number, title: string, because: [number, string][]) => ({
  score: 0.8,
  collabScore: 0.6,
  contentScore: 0.9,
  movie: movie(id, title),
  explanation: {
    summary: `Because you rated ${because.map(([, t]) => t).join(", ")}.`,
    because: because.map(([mid, t]) => ({ id: mid, title: t })),
  },
});
