//! trackly-fetcher
