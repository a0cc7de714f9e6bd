package rabbitmq_test

import (
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/v2m/v2m/internal/testenv"
	"github.com/v2m/v2m/pkg/server"
	"github.com/v2m/v2m/pkg/server/rabbitmq"
	"github.com/v2m/v2m/pkg/server/servertest"
)

// TestUpdatesContract runs the JobUpdates suite with each peer on a connection of its own,
// as a converter and gateway replicas are.
func TestUpdatesContract(t *testing.T) {
	url := testenv.Get(t, testenv.AMQPURL)
	servertest.TestJobUpdates(t, func(t *testing.T) func() server.JobUpdates {
		exchange := "test-updates-" + server.NewID()
		t.Cleanup(func() { deleteExchange(url, exchange) })
		return func() server.JobUpdates {
			return dial(t, rabbitmq.Config{URL: url}).Updates(exchange)
		}
	})
}

func deleteExchange(url, name string) {
	onChannel(url, func(ch *amqp.Channel) { _ = ch.ExchangeDelete(name, false, false) })
}
