"""What the tests run against: npsloop processes, local receivers and a Kafka cluster."""
