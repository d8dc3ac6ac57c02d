package server

import (
	"fmt"
	"io"
	"sort"
	"sync/atomic"
)

// metrics are the server's counters, exposed in Prometheus text format.
type metrics struct {
	iamat, whatsat, invalid       atomic.Int64
	iamatStored                   atomic.Int64
	peerSent, peerReceived        atomic.Int64
	peerStored                    atomic.Int64
	resyncs, resyncSent           atomic.Int64
	placesErrors                  atomic.Int64
	connsRejected, linesTooLong   atomic.Int64
	peerConnects, peerDisconnects atomic.Int64
	queueOverflows                atomic.Int64
	clientConns                   atomic.Int64
}

func (s *Server) writeMetrics(w io.Writer) {
	m := &s.metrics
	counter := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s{server=%q} %d\n", name, help, name, name, s.name, v)
	}
	gauge := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s{server=%q} %d\n", name, help, name, name, s.name, v)
	}
	counter("herd_iamat_total", "IAMAT commands answered.", m.iamat.Load())
	counter("herd_iamat_stored_total", "IAMAT commands newer than what the server held.", m.iamatStored.Load())
	counter("herd_whatsat_total", "WHATSAT commands answered.", m.whatsat.Load())
	counter("herd_invalid_total", "Invalid lines answered with '?'.", m.invalid.Load())
	counter("herd_peer_messages_sent_total", "Location updates flooded to neighbours (resyncs not included).", m.peerSent.Load())
	counter("herd_resync_messages_sent_total", "Location updates sent to neighbours in resyncs.", m.resyncSent.Load())
	counter("herd_peer_messages_received_total", "Location updates received from neighbours.", m.peerReceived.Load())
	counter("herd_peer_updates_stored_total", "Updates from neighbours newer than what the server held.", m.peerStored.Load())
	counter("herd_resyncs_total", "Full-state pushes to a neighbour (after a connect or an overflow).", m.resyncs.Load())
	counter("herd_places_errors_total", "WHATSAT answers with an upstream error.", m.placesErrors.Load())
	counter("herd_connections_rejected_total", "Connections refused over the limit.", m.connsRejected.Load())
	counter("herd_lines_too_long_total", "Over-long lines (connection closed).", m.linesTooLong.Load())
	counter("herd_peer_connects_total", "Peer links that came up.", m.peerConnects.Load())
	counter("herd_peer_disconnects_total", "Peer links that went down.", m.peerDisconnects.Load())
	counter("herd_queue_overflows_total", "Peer send queues that overflowed (replaced by a resync).", m.queueOverflows.Load())
	gauge("herd_client_connections", "Open client connections.", m.clientConns.Load())
	s.mu.Lock()
	clients := s.node.Len()
	s.mu.Unlock()
	gauge("herd_clients", "Clients whose location the server holds.", int64(clients))
	fmt.Fprintf(w, "# HELP herd_peer_up Whether the link this server dials to a neighbour is up.\n# TYPE herd_peer_up gauge\n")
	names := make([]string, 0, len(s.links))
	for n := range s.links {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		up := 0
		if s.links[n].isConnected() {
			up = 1
		}
		fmt.Fprintf(w, "herd_peer_up{server=%q,peer=%q} %d\n", s.name, n, up)
	}
}
