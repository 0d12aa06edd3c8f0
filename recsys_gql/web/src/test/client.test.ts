import { ClientError } from "graphql-request";
import { describe, expect, it } from "vitest";
import { describeError, OFFLINE_MESSAGE } from "../client";

function clientError(status: number, errors: unknown[], headers: Record<string, string> = {}) {
  return new ClientError(
    { status, headers: new Headers(headers), body: JSON.stringify({ errors }), errors } as never,
    { query: "{ genres }" },
  );
}

describe("describeError", () => {
  it("says when to retry a throttled request, from extensions.retryAfter", () => {
    const problem = describeError(
      clientError(429, [{ message: "Too many", extensions: { code: "RATE_LIMITED", retryAfter: 42 } }]),
    );
    expect(problem).toMatchObject({ kind: "rate-limited", retryAfter: 42 });
    expect(problem.message).toContain("42 s");
  });

  it("falls back to the Retry-After header", () => {
    const error = clientError(429, [{ message: "slow", extensions: { code: "RATE_LIMITED" } }], {
      "Retry-After": "17",
    });
    expect(describeError(error)).toMatchObject({ kind: "rate-limited", retryAfter: 17 });
  });

  it("calls an unreachable server down, in words", () => {
    expect(describeError(new TypeError("Failed to fetch"))).toEqual({
      kind: "offline",
      message: OFFLINE_MESSAGE,
    });
  });

  it("reports a 5xx without GraphQL errors with its status", () => {
    const problem = describeError(clientError(502, []));
    expect(problem.kind).toBe("server");
    expect(problem.message).toContain("HTTP 502");
  });

  it("passes any other GraphQL error message through", () => {
    const error = clientError(400, [
      { message: "first must be 1-100", extensions: { code: "INVALID_ARGUMENT" } },
    ]);
    expect(describeError(error)).toEqual({ kind: "refused", message: "first must be 1-100" });
  });
});
