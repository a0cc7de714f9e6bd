-- The trace context of a queued message (traceparent, tracestate, baggage) as a JSON object,
-- so that the spans of its handler join the trace of the request that published it; '' for
-- a message published without one.
ALTER TABLE messages ADD COLUMN trace_context TEXT NOT NULL DEFAULT '';
