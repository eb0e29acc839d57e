"""The write path of a check-in: batching on the event loop (`batcher`), the writer process
(`process`), what it does with a batch (`writer`), its PUBLISHes (`publisher`), what crosses
the socket between them (`wire`), and the scan rate limit's counters (`limits`)."""
