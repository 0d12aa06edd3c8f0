import { fireEvent, render, screen, waitFor, within } from "@testing-library/preact";
import { describe, expect, it } from "vitest";
import { App } from "../App";
import { createApi } from "../client";
import type { Live, LiveSink } from "../live";
import { fakeServer, HOME_ANSWER, rec } from "./fakeServer";

/** A live client the test pushes results through, recording each subscription. */
function fakeLive() {
  const subscriptions: { variables: unknown; sink: LiveSink<unknown>; open: boolean }[] = [];
  const live: Live = {
    subscribe(_document, variables, sink) {
      const entry = { variables, sink: sink as LiveSink<unknown>, open: true };
      subscriptions.push(entry);
      return () => {
        entry.open = false;
      };
    },
  };
  const push = (list: unknown[]) => {
    for (const s of subscriptions) if (s.open) s.sink.next({ recommendationsUpdated: list });
  };
  return { live, subscriptions, push };
}

describe("For you, live", () => {
  it("shows what the server pushes, and asks nothing over HTTP after a rating", async () => {
    const server = fakeServer({
      Home: HOME_ANSWER,
      SignUp: { data: { signUp: { message: "ok", token: "rgq_live", user: { id: 612 } } } },
      Rate: {
        data: {
          rateMovie: {
            __typename: "RatingSaved",
            message: "saved",
            rating: { rating: 5 },
            user: { id: 612, ratingsCount: 1 },
          },
        },
      },
    });
    const { live, subscriptions, push } = fakeLive();
    render(<App api={createApi(server.fetch)} live={live} />);
    fireEvent.click(screen.getByRole("button", { name: "Sign up in one click" }));
    await screen.findByText(/Signed in as/);
    await waitFor(() => expect(subscriptions.some((s) => s.open)).toBe(true));
    push([rec(1, "Toy Story", [])]);
    const recs = await screen.findByRole("list", { name: "Recommended movies" });
    await within(recs).findByText("Toy Story");

    const popular = await screen.findByRole("list", { name: "Popular movies" });
    fireEvent.click(within(popular).getAllByRole("button", { name: "Rate Toy Story 5 stars" })[0]);
    await within(popular).findByText("Saved: 5 stars.");
    await screen.findByText(/Updating…/); // the list is the old one until the push
    push([rec(6377, "Finding Nemo", [[1, "Toy Story"]])]);
    await within(recs).findByText("Finding Nemo");
    expect(within(recs).queryByRole("heading", { name: "Toy Story" })).toBeNull();
    await waitFor(() => expect(screen.queryByText(/Updating…/)).toBeNull());

    expect(server.sent.map((s) => s.operationName)).not.toContain("ForYou");
    expect(subscriptions.filter((s) => s.open)).toHaveLength(1); // one subscription, kept open
  });
});
