package live

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/centrifugal/centrifuge"
	"github.com/redis/rueidis"

	"github.com/sluicehq/sluice/internal/backoff"
)

// The pace of the Redis keeper. Not config: they only bound how soon the
// sink notices that Redis went away or came back.
const (
	// redisProbeInterval is how often Redis is asked PING while it answers.
	redisProbeInterval = time.Second
	// redisProbeTimeout bounds one PING.
	redisProbeTimeout = 2 * time.Second
	// redisRetryInitial and redisRetryMax shape the backoff between tries
	// while Redis does not answer (to connect at first, to PING after).
	redisRetryInitial = 250 * time.Millisecond
	redisRetryMax     = 5 * time.Second
	// redisConnectTimeout bounds one dial, so that a Redis that drops
	// packets delays the agent's start by this much at most.
	redisConnectTimeout = time.Second
)

// redisLink is the sink's standing with its Redis server: up, or down
// since when and why. Write publishes only while it is up, and counts
// what it skips while it is down.
type redisLink struct {
	addr    string
	skipped atomic.Uint64 // points not published: Redis did not answer

	mu    sync.Mutex
	up    bool
	since time.Time // when it went down: the sink's start if never up
	err   error     // why
}

func newRedisLink(addr string, start time.Time) *redisLink {
	return &redisLink{addr: addr, since: start, err: errors.New("not tried yet")}
}

func (l *redisLink) isUp() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.up
}

// lost records that Redis did not answer, reporting whether it was up.
func (l *redisLink) lost(at time.Time, err error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.up
	if was {
		l.since = at
	}
	l.up, l.err = false, redisProblem(err)
	return was
}

// found records that Redis answers, reporting whether it was down.
func (l *redisLink) found() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.up
	l.up, l.err = true, nil
	return !was
}

// health is nil while Redis answers, else what is wrong and since when.
func (l *redisLink) health() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.up {
		return nil
	}
	return fmt.Errorf("not connected to Redis at %s since %s: %w", l.addr, l.since.UTC().Format(time.RFC3339), l.err)
}

// redisProblem names the keys to check when Redis refused the
// credentials: that is the config, not the network.
func redisProblem(err error) error {
	msg := err.Error()
	for _, refusal := range []string{"WRONGPASS", "NOAUTH", "NOPERM", "invalid password", "invalid username-password"} {
		if strings.Contains(msg, refusal) {
			return fmt.Errorf("the server refused the credentials (check redis.user and redis.password_file): %w", err)
		}
	}
	return err
}

// redisNode is a centrifuge node running on a Redis broker, and the
// connections it needs closed after it stops.
type redisNode struct {
	node  *centrifuge.Node
	shard *centrifuge.RedisShard
	probe rueidis.Client // its own connection, for PING
}

// ping asks Redis PING.
func (rn *redisNode) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, redisProbeTimeout)
	defer cancel()
	return rn.probe.Do(ctx, rn.probe.B().Ping().Build()).Error()
}

// close stops the node, then closes its connections to Redis (the
// broker does not close its shard).
func (rn *redisNode) close(ctx context.Context) error {
	err := rn.node.Shutdown(ctx)
	rn.shard.Close()
	rn.probe.Close()
	return err
}

// startRedisNode builds a node on the Redis broker and runs it. It fails
// when Redis does not answer (or refuses the credentials), having closed
// whatever it opened.
func (s *Sink) startRedisNode() (*redisNode, error) {
	r := s.cfg.Redis
	probe, err := rueidis.NewClient(rueidis.ClientOption{
		InitAddress: []string{r.Address},
		Username:    r.User, Password: r.Password, SelectDB: r.DB,
		ClientName:        "sluice-live-probe",
		DisableCache:      true,
		DisableRetry:      true,
		ForceSingleClient: true,
		ConnWriteTimeout:  redisProbeTimeout,
		Dialer:            net.Dialer{Timeout: redisConnectTimeout},
	})
	if err != nil {
		return nil, err
	}
	node, err := s.newNode()
	if err != nil {
		probe.Close()
		return nil, err
	}
	shard, err := centrifuge.NewRedisShard(node, centrifuge.RedisShardConfig{
		Address:        r.Address,
		User:           r.User,
		Password:       r.Password,
		DB:             r.DB,
		ClientName:     "sluice-live",
		ConnectTimeout: redisConnectTimeout,
	})
	if err != nil {
		probe.Close()
		return nil, err
	}
	rn := &redisNode{node: node, shard: shard, probe: probe}
	broker, err := centrifuge.NewRedisBroker(node, centrifuge.RedisBrokerConfig{
		Prefix: r.Prefix,
		Shards: []*centrifuge.RedisShard{shard},
	})
	if err == nil {
		node.SetBroker(broker)
		err = node.Run()
	}
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = rn.close(ctx)
		return nil, err
	}
	return rn, nil
}

// keepRedis runs until ctx ends. Until the node runs it tries to start
// it, with backoff; then it asks Redis PING every redisProbeInterval
// while it answers, and with backoff while it does not. Writes publish
// while the link is up and skip otherwise; centrifuge reconnects its
// own connections (publishing, PUB/SUB) by itself.
func (s *Sink) keepRedis(ctx context.Context) {
	bo := backoff.New(backoff.Policy{Initial: redisRetryInitial, Max: redisRetryMax})
	for {
		wait := redisProbeInterval
		rn := s.currentRedisNode()
		var err error
		if rn == nil {
			if rn, err = s.startRedisNode(); err == nil && !s.installRedisNode(rn) {
				return // closed meanwhile
			}
		} else {
			err = rn.ping(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if s.redis.lost(s.now(), err) {
				s.log.Warn("live: Redis does not answer; points are skipped until it does", "redis", s.cfg.Redis.Address, "error", err)
			} else {
				s.log.Debug("live: Redis still does not answer", "redis", s.cfg.Redis.Address, "error", err)
			}
			wait = bo.Next()
		} else {
			if s.redis.found() {
				s.log.Info("live: connected to Redis; publishing", "redis", s.cfg.Redis.Address)
			}
			bo.Reset()
		}
		if backoff.Sleep(ctx, wait) != nil {
			return
		}
	}
}

func (s *Sink) currentRedisNode() *redisNode {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	return s.rnode
}

// installRedisNode makes rn the node that serves, unless the sink is
// closing (then it stops rn and reports false).
func (s *Sink) installRedisNode(rn *redisNode) bool {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.rclosed {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = rn.close(ctx)
		return false
	}
	s.rnode = rn
	s.serve(rn.node)
	return true
}
