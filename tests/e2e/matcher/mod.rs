//! Filing mail on candidates: the scenario, through the pure matcher and
//! end to end.

mod matching;
