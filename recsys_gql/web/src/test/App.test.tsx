import { fireEvent, render, screen, within } from "@testing-library/preact";
import { describe, expect, it } from "vitest";
import { App } from "../App";
import { createApi, TOKEN_KEY } from "../client";
import { fakeServer, HOME_ANSWER, movie, rec } from "./fakeServer";

const VIEWER_ANSWER = {
  data: { viewer: { id: 611, ratingsCount: 0, ratings: { edges: [] } } },
};

function forYou(ratings: number) {
  return {
    data: {
      viewer: {
        id: 611,
        ratingsCount: ratings,
        recommendations:
          ratings === 0
            ? [rec(1, "Toy Story", [])]
            : [rec(2355, "Bug's Life, A", [[1, "Toy Story"]]), rec(6377, "Finding Nemo", [[1, "Toy Story"]])],
      },
    },
  };
}

describe("App", () => {
  it("paints before any answer, then shows popular movies", async () => {
    const server = fakeServer({ Home: HOME_ANSWER });
    render(<App api={createApi(server.fetch)} />);
    expect(screen.getByRole("heading", { name: /Movie picks/ })).toBeTruthy();
    expect(screen.getByRole("button", { name: "Sign up in one click" })).toBeTruthy();
    const list = await screen.findByRole("list", { name: "Popular movies" });
    await within(list).findByText("Toy Story");
    expect(server.sent.map((s) => s.operationName)).toEqual(["Home"]);
  });

  it("signs up in one click, keeps the token and refreshes For you after a rating", async () => {
    let rated = 0;
    const server = fakeServer({
      Home: HOME_ANSWER,
      SignUp: { data: { signUp: { message: "ok", token: "rgq_secret", user: { id: 611 } } } },
      ForYou: () => forYou(rated),
      Rate: (v) => {
        rated += 1;
        return {
          data: {
            rateMovie: {
              __typename: "RatingSaved",
              message: "saved",
              rating: { rating: v.rating },
              user: { id: 611, ratingsCount: rated },
            },
          },
        };
      },
    });
    render(<App api={createApi(server.fetch)} />);
    fireEvent.click(screen.getByRole("button", { name: "Sign up in one click" }));
    await screen.findByText(/Signed in as/);
    expect(window.localStorage.getItem(TOKEN_KEY)).toBe("rgq_secret");

    const popular = await screen.findByRole("list", { name: "Popular movies" });
    await within(popular).findByText("Toy Story");
    fireEvent.click(within(popular).getAllByRole("button", { name: "Rate Toy Story 4.5 stars" })[0]);
    await within(popular).findByText("Saved: 4.5 stars.");

    const recs = screen.getByRole("list", { name: "Recommended movies" });
    await within(recs).findByText("Finding Nemo");
    expect(within(recs).getAllByText(/Because you rated/).length).toBeGreaterThan(0);
    expect(within(recs).getAllByRole("img")[0].getAttribute("aria-label")).toBe(
      "people like you 60%, plots you like 90%",
    );
    const rate = server.sent.find((s) => s.operationName === "Rate");
    expect(rate).toMatchObject({
      variables: { userId: 611, movieId: 1, rating: 4.5 },
      authorization: "Bearer rgq_secret",
    });
    const forYouCalls = server.sent.filter((s) => s.operationName === "ForYou");
    expect(forYouCalls.length).toBeGreaterThanOrEqual(2); // once signed in, again after rating
  });

  it("says why a rating was refused", async () => {
    window.localStorage.setItem(TOKEN_KEY, "rgq_old");
    const server = fakeServer({
      Home: HOME_ANSWER,
      Viewer: VIEWER_ANSWER,
      ForYou: forYou(0),
      Rate: {
        data: {
          rateMovie: {
            __typename: "InvalidRating",
            message: "rating must be from 0.5 to 5.0 in steps of 0.5",
            field: "rating",
          },
        },
      },
    });
    render(<App api={createApi(server.fetch)} />);
    await screen.findByText(/Signed in as/);
    const popular = await screen.findByRole("list", { name: "Popular movies" });
    await within(popular).findByText("Toy Story");
    fireEvent.click(within(popular).getByRole("button", { name: "Rate Toy Story 5 stars" }));
    const alert = await within(popular).findByRole("alert");
    expect(alert.textContent).toContain("rating must be from 0.5 to 5.0");
  });

  it("turns a 429 into a retry time", async () => {
    const server = fakeServer({
      Home: HOME_ANSWER,
      TitleSearch: {
        status: 429,
        headers: { "Retry-After": "37" },
        errors: [
          {
            message: "Too many reads: the limit is 2 per 1 minute. Retry in 37 s.",
            extensions: { code: "RATE_LIMITED", retryAfter: 37 },
          },
        ],
      },
    });
    render(<App api={createApi(server.fetch)} />);
    fireEvent.input(screen.getByLabelText("Title"), { target: { value: "Toy" } });
    fireEvent.click(screen.getByRole("button", { name: "Search" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("wait 37 s");
    expect(alert.textContent).toContain("You can retry in 37 s.");
    expect(screen.queryByText(/Nothing found/)).toBeNull(); // a refusal is not an empty result
  });

  it("shows a clear message when the server is down, never a blank page", async () => {
    const server = fakeServer({ Home: "network-down" });
    render(<App api={createApi(server.fetch)} />);
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Can't reach the recommendation server");
    expect(screen.getByRole("heading", { name: "Find movies" })).toBeTruthy();
  });

  it("finds a movie by description and opens it with similar movies", async () => {
    const server = fakeServer({
      Home: HOME_ANSWER,
      DescriptionSearch: {
        data: { searchMovies: [{ score: 0.6, movie: movie(6377, "Finding Nemo") }] },
      },
      Movie: {
        data: {
          movie: {
            ...movie(6377, "Finding Nemo"),
            overview: "A clownfish crosses the ocean to find his son.",
            ratingsCount: 141,
            similar: [{ similarity: 0.8, movie: movie(2355, "Bug's Life, A") }],
          },
        },
      },
    });
    render(<App api={createApi(server.fetch)} />);
    fireEvent.click(screen.getByLabelText("by description"));
    fireEvent.input(screen.getByLabelText("Describe the movie"), {
      target: { value: "a fish looking for his son" },
    });
    fireEvent.click(screen.getByRole("button", { name: "Search" }));
    const results = await screen.findByRole("list", { name: "Search results" });
    fireEvent.click(within(results).getByRole("button", { name: "Finding Nemo" }));
    await screen.findByText("A clownfish crosses the ocean to find his son.");
    expect(screen.getByText(/from 141 ratings/)).toBeTruthy();
    const similar = screen.getByRole("heading", { name: "Similar movies" }).nextElementSibling;
    expect(within(similar as HTMLElement).getByRole("button", { name: "Bug's Life, A" })).toBeTruthy();
    expect(server.sent.find((s) => s.operationName === "DescriptionSearch")?.variables).toEqual({
      query: "a fish looking for his son",
    });
  });

  it("pages through a title search with Show more", async () => {
    const server = fakeServer({
      Home: HOME_ANSWER,
      TitleSearch: (v) => ({
        data: {
          movies: {
            totalCount: 2,
            pageInfo: v.after ? { hasNextPage: false, endCursor: "b" } : { hasNextPage: true, endCursor: "a" },
            edges: [{ node: v.after ? movie(68954, "Up") : movie(1, "Toy Story") }],
          },
        },
      }),
    });
    render(<App api={createApi(server.fetch)} />);
    await screen.findAllByRole("option", { name: "Animation" }); // genres arrived
    fireEvent.input(screen.getByLabelText("Title"), { target: { value: "up" } });
    fireEvent.change(screen.getByLabelText("Genre"), { target: { value: "Animation" } });
    fireEvent.click(screen.getByRole("button", { name: "Search" }));
    fireEvent.click(await screen.findByRole("button", { name: "Show more" }));
    const results = screen.getByRole("list", { name: "Search results" });
    await within(results).findByText("Up");
    expect(within(results).getByText("Toy Story")).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Show more" })).toBeNull();
    const calls = server.sent.filter((s) => s.operationName === "TitleSearch");
    expect(calls.map((c) => c.variables)).toEqual([
      { search: "up", genres: ["Animation"], after: null },
      { search: "up", genres: ["Animation"], after: "a" },
    ]);
  });

  it("refuses a pasted token the server does not know", async () => {
    const server = fakeServer({ Home: HOME_ANSWER, Viewer: { data: { viewer: null } } });
    render(<App api={createApi(server.fetch)} />);
    fireEvent.input(screen.getByLabelText("or paste a token"), { target: { value: "rgq_bad" } });
    fireEvent.click(screen.getByRole("button", { name: "Use token" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("not accepted");
    expect(window.localStorage.getItem(TOKEN_KEY)).toBeNull();
  });
});
