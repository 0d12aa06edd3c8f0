/**
 * Every GraphQL operation the page sends, typed from schema.graphql by GraphQL Code Generator
 * (`npm run codegen`): a schema change that breaks one of them fails `npm run build`.
 * Each view is one operation, so a visit spends few of the server's per-minute reads.
 */
import { graphql } from "./gql";

export const HOME = graphql(`
  query Home($genres: [String!]) {
    genres
    popularMovies(first: 12, genres: $genres) { id title year genres averageRating }
  }
`);

export const VIEWER = graphql(`
  query Viewer {
    viewer {
      id
      ratingsCount
      ratings(first: 100) { edges { node { rating movie { id } } } }
    }
  }
`);

export const FOR_YOU = graphql(`
  query ForYou($first: Int!, $alpha: Float, $genres: [String!]) {
    viewer {
      id
      ratingsCount
      recommendations(first: $first, alpha: $alpha, genres: $genres) {
        score
        collabScore
        contentScore
        movie { id title year genres averageRating }
        explanation { summary because { id title } }
      }
    }
  }
`);

/** "For you" kept current by the server: a new list after each of the viewer's ratings. */
export const FOR_YOU_LIVE = graphql(`
  subscription ForYouLive($first: Int!, $alpha: Float, $genres: [String!]) {
    recommendationsUpdated(first: $first, alpha: $alpha, genres: $genres) {
      score
      collabScore
      contentScore
      movie { id title year genres averageRating }
      explanation { summary because { id title } }
    }
  }
`);

export const TITLE_SEARCH = graphql(`
  query TitleSearch($search: String!, $genres: [String!], $after: String) {
    movies(search: $search, genres: $genres, first: 20, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id title year genres averageRating } }
    }
  }
`);

export const DESCRIPTION_SEARCH = graphql(`
  query DescriptionSearch($query: String!) {
    searchMovies(query: $query, first: 20) {
      score
      movie { id title year genres averageRating }
    }
  }
`);

export const MOVIE = graphql(`
  query Movie($id: Int!) {
    movie(id: $id) {
      id
      title
      year
      genres
      overview
      ratingsCount
      averageRating
      similar(first: 6) { similarity movie { id title year genres averageRating } }
    }
  }
`);

export const SIGN_UP = graphql(`
  mutation SignUp {
    signUp { message token user { id } }
  }
`);

export const RATE = graphql(`
  mutation Rate($userId: Int!, $movieId: Int!, $rating: Float!) {
    rateMovie(input: { userId: $userId, movieId: $movieId, rating: $rating }) {
      __typename
      ... on RatingSaved { message rating { rating } user { id ratingsCount } }
      ... on InvalidRating { message field }
      ... on MovieNotFound { message movieId }
      ... on Unauthenticated { message code }
      ... on Forbidden { message code }
    }
  }
`);
