//! # fusebox-segment (skeleton)
//!
//! The segment engine arrives with issue 4: segment filters (`and` / `or` / `not` over
//! attribute predicates, event predicates with counts and windows, and references to other
//! segments) are normalised by a planner, split into sub-queries that run in parallel under
//! Rayon over Polars columns, and combined as roaring bitmaps; identical sub-filters are
//! computed once per segment group and refreshed incrementally.
//!
//! Until then this crate only reserves the name in the workspace and in the `fusebox` facade;
//! it exports nothing, and `fusebox check` reports segment files as not yet validated.
