package tracing

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
)

// Attributes of messaging spans (OpenTelemetry's messaging conventions).
const (
	MessagingSystem      = attribute.Key("messaging.system")
	MessagingDestination = attribute.Key("messaging.destination.name")
	MessagingOperation   = attribute.Key("messaging.operation.type")
	MessagingAttempt     = attribute.Key("v2m.delivery.attempt")
)

// maxCarrierValue bounds what Extract takes from a message's header: a traceparent is 55
// bytes, W3C limits baggage to 8192.
const maxCarrierValue = 8192

// StartPublish starts the producer span of one message published to topic on system
// ("rabbitmq", "sqlite"), and returns ctx with it and the carrier to store with the message.
// The caller ends the span (Fail first on an error).
func StartPublish(ctx context.Context, tp trace.TracerProvider, system, topic string) (context.Context, trace.Span, Carrier) {
	ctx, span := Tracer(tp).Start(ctx, "publish "+topic, trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(MessagingSystem.String(system), MessagingDestination.String(topic), MessagingOperation.String("send")))
	return ctx, span, Inject(ctx)
}

// CarrierFrom keeps the propagation fields of a message's headers (traceparent, tracestate,
// baggage) that are strings of a sane length; get returns a header's value.
func CarrierFrom(get func(key string) (any, bool)) Carrier {
	c := Carrier{}
	for _, k := range propagator.Fields() {
		if v, ok := get(k); ok {
			if s, ok := v.(string); ok && len(s) <= maxCarrierValue {
				c[k] = s
			}
		}
	}
	return c
}

// StartConsume starts the consumer span of a handler that processes one delivery of topic
// whose trace context is in ctx (the queue extracted it): name says what the handler does.
func StartConsume(ctx context.Context, tp trace.TracerProvider, name, topic string, attempt int) (context.Context, trace.Span) {
	return Tracer(tp).Start(ctx, name, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(MessagingDestination.String(topic), MessagingOperation.String("process"), MessagingAttempt.Int(attempt)))
}

// Carry returns to with the span and baggage of from: for work that runs in a context of its
// own (one that outlives a consumer's) on behalf of a delivery.
func Carry(from, to context.Context) context.Context {
	if sc := trace.SpanContextFromContext(from); sc.IsValid() {
		to = trace.ContextWithSpanContext(to, sc)
	}
	if b := baggage.FromContext(from); b.Len() > 0 {
		to = baggage.ContextWithBaggage(to, b)
	}
	return to
}
