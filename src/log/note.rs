//! Signed notes (c2sp.org/signed-note): parsing, verifier keys, signing.
