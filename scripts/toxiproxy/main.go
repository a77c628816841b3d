// toxiproxy-server for ferry's test bed: Shopify's toxiproxy (its API, proxies and every standard
// toxic, unchanged) plus one toxic of our own, `link`.
//
// toxiproxy's `bandwidth` toxic caps each connection on its own (every connection gets its own
// toxic instance), so a client with N connections to an endpoint moves N times the rate
// (Shopify/toxiproxy#190). A WAN link is one pipe that every connection shares. The `link`
// toxic models that: every instance with the same `link` name draws from one FIFO byte
// schedule of `rate` KB/s, across all connections and all proxies that name it. The test bed's
// `wan --bandwidth` puts one per direction and side (source or target) of the migration.
package main

import (
	"flag"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/collectors"
	"github.com/Shopify/toxiproxy/v2/toxics"
)

// LinkToxic passes data at `rate` KB/s (1 KB = 1000 bytes, as toxiproxy's bandwidth toxic
// counts), shared with every other link toxic of the same name.
type LinkToxic struct {
	Rate int64  `json:"rate"`
	Link string `json:"link"`
}

// A link's schedule: when its pipe is next free. A chunk waits for the pipe, then holds it for
// its own size / rate; chunks leave in the order they were reserved.
type link struct {
	mu   sync.Mutex
	free time.Time
}

var (
	linksMu sync.Mutex
	links   = map[string]*link{}
)

func linkNamed(name string) *link {
	linksMu.Lock()
	defer linksMu.Unlock()
	l, ok := links[name]
	if !ok {
		l = &link{}
		links[name] = l
	}
	return l
}

// reserve books n bytes on the link at rate KB/s and returns when they have passed it.
func (l *link) reserve(n int, rate int64) time.Time {
	hold := time.Duration(n) * time.Millisecond / time.Duration(rate)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.free.Before(now) {
		l.free = now
	}
	l.free = l.free.Add(hold)
	return l.free
}

func (t *LinkToxic) Pipe(stub *toxics.ToxicStub) {
	l := linkNamed(t.Link)
	timer := time.NewTimer(0)
	<-timer.C
	for {
		select {
		case <-stub.Interrupt:
			return
		case c := <-stub.Input:
			if c == nil {
				stub.Close()
				return
			}
			if t.Rate > 0 {
				timer.Reset(time.Until(l.reserve(len(c.Data), t.Rate)))
				select {
				case <-timer.C:
				case <-stub.Interrupt:
					// Never drop bytes: the chunk goes on, unpaced, as the toxic is removed.
					_ = stub.WriteOutput(c, 5*time.Second)
					return
				}
			}
			stub.Output <- c
		}
	}
}

// Chunks queue here while they wait for the link, so the reading side keeps reading (as a
// router's queue does) instead of every connection stalling its peer.
func (t *LinkToxic) GetBufferSize() int { return 1024 }

func main() {
	host := flag.String("host", "127.0.0.1", "the API's host")
	port := flag.String("port", "8474", "the API's port")
	proxyMetrics := flag.Bool("proxy-metrics", false, "per-proxy Prometheus metrics on /metrics")
	flag.Parse()

	toxics.Register("link", new(LinkToxic))

	logger := zerolog.New(os.Stdout).With().Timestamp().Logger()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), logger)
	if *proxyMetrics {
		server.Metrics.ProxyMetrics = collectors.NewProxyMetricCollectors()
	}
	addr := net.JoinHostPort(*host, *port)
	go func() {
		if err := server.Listen(addr); err != nil {
			logger.Err(err).Msg("the API stopped")
			os.Exit(1)
		}
	}()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
	_ = server.Shutdown()
}
