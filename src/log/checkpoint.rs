//! Checkpoints (c2sp.org/tlog-checkpoint): the signed tree head of a log.
