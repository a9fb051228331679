//! tuning — the sweep harness (linger.ms × batch.size × compression × acks) against any
//! Kafka-compatible cluster. Empty until its issue lands: nothing here yet by design.
