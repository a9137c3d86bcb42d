// sarama (github.com/IBM/sarama) against the broker: ClusterAdmin CreateTopic, an idempotent
// acks=all SyncProducer, a ConsumerGroup with auto-commit off and session.Commit(), and a second
// member of the group that must resume from those commits.

package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// saramaDialer routes sarama's connections through the version log (sarama takes any
// golang.org/x/net/proxy.Dialer).
type saramaDialer struct{ vlog *versionLog }

func (d saramaDialer) Dial(network, addr string) (net.Conn, error) { return d.vlog.dial(network, addr) }

func saramaConfig(vlog *versionLog) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.ClientID = "seckill-compat-sarama"
	// sarama sends request versions by this Kafka version (clamped by what ApiVersions
	// advertises); the idempotent producer needs at least 0.11, the brief asks for >= 2.1.
	cfg.Version = sarama.V3_6_0_0
	cfg.Net.Proxy.Enable = true
	cfg.Net.Proxy.Dialer = saramaDialer{vlog}
	cfg.Net.DialTimeout = 5 * time.Second
	cfg.Net.ReadTimeout = 30 * time.Second
	cfg.Net.WriteTimeout = 10 * time.Second
	cfg.Admin.Timeout = 15 * time.Second

	// The idempotent producer: sarama refuses the config unless acks are all and at most one
	// request is in flight per connection.
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true

	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 500 * time.Millisecond
	return cfg
}

// saramaCreateTopic creates the topic, then again: the second must be TOPIC_ALREADY_EXISTS.
func saramaCreateTopic(adm sarama.ClusterAdmin, topic string) error {
	detail := &sarama.TopicDetail{NumPartitions: numPartitions, ReplicationFactor: 1}
	if err := adm.CreateTopic(topic, detail, false); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	err := adm.CreateTopic(topic, detail, false)
	if !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("creating topic %s a second time: got %v, want TOPIC_ALREADY_EXISTS", topic, err)
	}
	return nil
}

// saramaProduce sends records [from, to) in one SendMessages call; any failed message fails it.
func saramaProduce(p sarama.SyncProducer, topic, run string, from, to int) (map[string]position, error) {
	msgs := make([]*sarama.ProducerMessage, 0, to-from)
	for i := from; i < to; i++ {
		msgs = append(msgs, &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.StringEncoder(recordKey(i)),
			Value: sarama.StringEncoder(recordValue(run, i)),
		})
	}
	if err := p.SendMessages(msgs); err != nil {
		var perrs sarama.ProducerErrors
		if errors.As(err, &perrs) && len(perrs) > 0 {
			return nil, fmt.Errorf("%d of %d messages failed, first: %w", len(perrs), len(msgs), perrs[0].Err)
		}
		return nil, fmt.Errorf("send messages: %w", err)
	}
	acked := map[string]position{}
	for _, m := range msgs {
		v, err := m.Value.Encode()
		if err != nil {
			return nil, err
		}
		if m.Offset < 0 {
			return nil, fmt.Errorf("message %s has no offset after SendMessages", v)
		}
		acked[string(v)] = position{m.Partition, m.Offset}
	}
	return acked, nil
}

// groupHandler keeps every claimed message (and checks it at once if it has a tracker), marks
// it and commits synchronously whenever a claim has caught up (its buffer is empty), so that by
// the time the last expected record is counted its offset is committed.
type groupHandler struct {
	topic    string
	t        *tracker // nil: only collect
	mu       sync.Mutex
	got      []*sarama.ConsumerMessage
	assigned chan struct{}
	once     sync.Once
	errs     chan error
}

func (h *groupHandler) add(m *sarama.ConsumerMessage) error {
	h.mu.Lock()
	h.got = append(h.got, m)
	h.mu.Unlock()
	if h.t == nil {
		return nil
	}
	return h.t.add(string(m.Value), m.Partition, m.Offset)
}

func (h *groupHandler) collected() []*sarama.ConsumerMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*sarama.ConsumerMessage{}, h.got...)
}

func (h *groupHandler) Setup(s sarama.ConsumerGroupSession) error {
	if len(s.Claims()[h.topic]) == numPartitions {
		h.once.Do(func() { close(h.assigned) })
	}
	return nil
}

func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-c.Messages():
			if !ok {
				return nil
			}
			s.MarkMessage(m, "")
			if len(c.Messages()) == 0 {
				s.Commit()
			}
			if err := h.add(m); err != nil {
				select {
				case h.errs <- err:
				default:
				}
				return err
			}
		case <-s.Context().Done():
			return nil
		}
	}
}

// saramaMember is one running member of the group.
type saramaMember struct {
	cg     sarama.ConsumerGroup
	h      *groupHandler
	cancel context.CancelFunc
	done   chan struct{}
}

func startSaramaMember(bootstrap string, cfg *sarama.Config, topic, group string, t *tracker) (*saramaMember, error) {
	cg, err := sarama.NewConsumerGroup([]string{bootstrap}, group, cfg)
	if err != nil {
		return nil, fmt.Errorf("new consumer group: %w", err)
	}
	h := &groupHandler{topic: topic, t: t, assigned: make(chan struct{}), errs: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	m := &saramaMember{cg: cg, h: h, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		// Consume returns at every rebalance; it is called again until the member is stopped.
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				select {
				case h.errs <- fmt.Errorf("consume: %w", err):
				default:
				}
				return
			}
		}
	}()
	go func() {
		for err := range cg.Errors() {
			select {
			case h.errs <- fmt.Errorf("consumer group error: %w", err):
			default:
			}
		}
	}()
	return m, nil
}

// waitFor waits until the tracker is complete, an error shows, or the limit passes.
func (m *saramaMember) waitFor(t *tracker, limit time.Duration) error {
	deadline := time.After(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !t.done() {
		select {
		case err := <-m.h.errs:
			return err
		case <-deadline:
			return fmt.Errorf("timed out after %v: %s", limit, t.missing())
		case <-tick.C:
		}
	}
	return nil
}

// collect waits `window` or until `n` messages arrived, failing on any error, and returns what
// arrived (which the caller checks).
func (m *saramaMember) collect(n int, window time.Duration) ([]*sarama.ConsumerMessage, error) {
	deadline := time.After(window)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for len(m.h.collected()) < n {
		select {
		case err := <-m.h.errs:
			return nil, err
		case <-deadline:
			return m.h.collected(), nil
		case <-tick.C:
		}
	}
	return m.h.collected(), nil
}

// close stops consuming and closes the group, which sends LeaveGroup.
func (m *saramaMember) close() error {
	m.cancel()
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		return errors.New("consumer did not stop within 30 s")
	}
	return m.cg.Close()
}

// saramaCheckGroup: committed offsets at the partition ends, no members left.
func saramaCheckGroup(adm sarama.ClusterAdmin, group, topic string, ends map[int32]int64) error {
	parts := []int32{}
	for p := range ends {
		parts = append(parts, p)
	}
	resp, err := adm.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return fmt.Errorf("list group offsets: %w", err)
	}
	for p, end := range ends {
		b := resp.GetBlock(topic, p)
		if b == nil || !errors.Is(b.Err, sarama.ErrNoError) || b.Offset != end {
			return fmt.Errorf("partition %d: committed %+v, want offset %d", p, b, end)
		}
	}
	desc, err := adm.DescribeConsumerGroups([]string{group})
	if err != nil || len(desc) != 1 {
		return fmt.Errorf("describe group: %v (%d answers)", err, len(desc))
	}
	if desc[0].State != "Empty" || len(desc[0].Members) != 0 {
		return fmt.Errorf("after close the group is %q with %d members; want Empty with none", desc[0].State, len(desc[0].Members))
	}
	return nil
}

func runSarama(bootstrap string) (*summary, error) {
	start := time.Now()
	sarama.Logger = log.New(os.Stderr, "sarama ", log.Ltime|log.Lmicroseconds)
	vlog := newVersionLog()
	cfg := saramaConfig(vlog)
	topic, group := runName("sarama", "topic"), runName("sarama", "group")

	adm, err := sarama.NewClusterAdmin([]string{bootstrap}, cfg)
	if err != nil {
		return nil, fmt.Errorf("new cluster admin: %w", err)
	}
	defer func() { _ = adm.Close() }()
	if err := saramaCreateTopic(adm, topic); err != nil {
		return nil, err
	}

	prod, err := sarama.NewSyncProducer([]string{bootstrap}, cfg)
	if err != nil {
		return nil, fmt.Errorf("new idempotent producer: %w", err)
	}
	defer func() { _ = prod.Close() }()
	acked, err := saramaProduce(prod, topic, topic, 0, numRecords)
	if err != nil {
		return nil, err
	}

	// First member: everything back exactly once, in order per partition, committed.
	t := newTracker(acked)
	first, err := startSaramaMember(bootstrap, cfg, topic, group, t)
	if err != nil {
		return nil, err
	}
	err = first.waitFor(t, 60*time.Second)
	if err == nil {
		select {
		case <-first.h.assigned:
		default:
			err = errors.New("consumed everything without being assigned all partitions")
		}
	}
	if cerr := first.close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return nil, fmt.Errorf("first consumer: %w", err)
	}
	if err := saramaCheckGroup(adm, group, topic, endOffsets(acked)); err != nil {
		return nil, err
	}

	// Second member: starts from the commits, so nothing until the late records.
	second, err := startSaramaMember(bootstrap, cfg, topic, group, nil)
	if err != nil {
		return nil, err
	}
	before, late, lt, err := saramaSecondMember(second, prod, topic)
	if cerr := second.close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return nil, fmt.Errorf("second consumer: %w", err)
	}
	all := map[string]position{}
	for k, v := range acked {
		all[k] = v
	}
	for k, v := range late {
		all[k] = v
	}
	if err := saramaCheckGroup(adm, group, topic, endOffsets(all)); err != nil {
		return nil, fmt.Errorf("after the second consumer: %w", err)
	}

	return &summary{
		Client: "sarama v1.61.1", Topic: topic, Group: group,
		Produced: numRecords + numLate, Consumed: t.count(),
		SecondBeforeLate: before, SecondLate: lt.count(),
		APIVersions: vlog.byName(), Seconds: time.Since(start).Seconds(),
	}, nil
}

// saramaSecondMember: once assigned everything, the member gets nothing during the quiet window
// (the commits hold), then exactly the late records. It returns how many arrived before them.
func saramaSecondMember(m *saramaMember, prod sarama.SyncProducer, topic string) (int, map[string]position, *tracker, error) {
	select {
	case <-m.h.assigned:
	case err := <-m.h.errs:
		return 0, nil, nil, err
	case <-time.After(30 * time.Second):
		return 0, nil, nil, errors.New("not assigned every partition within 30 s")
	}
	early, err := m.collect(1, quietWindow)
	if err != nil {
		return 0, nil, nil, err
	}
	if len(early) > 0 {
		return len(early), nil, nil, fmt.Errorf("got %q at %d/%d before the late records (committed positions not held?)",
			early[0].Value, early[0].Partition, early[0].Offset)
	}
	late, err := saramaProduce(prod, topic, topic, numRecords, numRecords+numLate)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("late records: %w", err)
	}
	if _, err := m.collect(numLate, 30*time.Second); err != nil {
		return 0, nil, nil, fmt.Errorf("late records: %w", err)
	}
	// Anything beyond the ten would be a redelivery; give it a moment to show.
	got, err := m.collect(numLate+1, time.Second)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("after the late records: %w", err)
	}
	lt := newTracker(late)
	for _, r := range got {
		if err := lt.add(string(r.Value), r.Partition, r.Offset); err != nil {
			return 0, nil, nil, fmt.Errorf("late records: %w", err)
		}
	}
	if !lt.done() {
		return 0, nil, nil, fmt.Errorf("late records: %s", lt.missing())
	}
	return 0, late, lt, nil
}
