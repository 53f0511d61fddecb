package scenario

import (
	"sort"
	"strings"
)

// InvariantSpec is one entry of [invariants]: a built-in invariant turned off
// (Off: the reason), or kept for every node but those matching Except (globs,
// with the Reason), for the invariants about nodes (ExceptInvariants).
type InvariantSpec struct {
	Off    string   `toml:"off,omitempty"`
	Except []string `toml:"except,omitempty"`
	Reason string   `toml:"reason,omitempty"`
}

// ExceptInvariants are the invariants that judge nodes one by one, so a
// scenario may exempt some (e.g. a consumer not expected to read).
var ExceptInvariants = []string{"consumers_read", "no_false_death", "ordered_complete"}

// Invariants names the built-in invariants every run is checked against
// (docs/scenarios.md, "Invariants"); package verdict has one check per name
// (a test keeps them equal).
var Invariants = []string{
	"registry_matches",     // the broker's registry equals the live parties at run_end
	"consumers_read",       // every consumer that started attached (when asked) and read
	"no_false_death",       // no party declared dead while it went on working
	"ordered_complete",     // under Single_reader/Sync_reader every committed sequence was read
	"hub_resources_return", // hub fds and goroutines back near baseline once every node ended
	"hub_resources_steady", // hub fds and goroutines at run_end ≈ at t0 (same parties)
}

// ResourceMetrics are the metrics of a resource expectation.
var ResourceMetrics = []string{"fds", "threads", "rss", "goroutines"}

// DeliveryModes are the values of a delivery expectation's delivery key.
var DeliveryModes = []string{"exactly_once", "each"}

// checkInvariants refuses an unknown invariant or one turned off without a
// reason.
func (c checker) checkInvariants(inv map[string]InvariantSpec, roles map[string]string) error {
	names := make([]string, 0, len(inv))
	for k := range inv {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !contains(Invariants, k) {
			return c.errf("invariants."+k, "", "unknown invariant %q (invariants: %s)", k, strings.Join(Invariants, ", "))
		}
		s := inv[k]
		switch {
		case len(s.Except) > 0:
			if s.Off != "" {
				return c.errf("invariants."+k, "", "invariant %q: off or except, not both", k)
			}
			if !contains(ExceptInvariants, k) {
				return c.errf("invariants."+k, "", "invariant %q judges no node one by one: except applies to %s", k, strings.Join(ExceptInvariants, ", "))
			}
			if strings.TrimSpace(s.Reason) == "" {
				return c.errf("invariants."+k, "", "invariant %q: except needs the reason (reason = \"…\")", k)
			}
			for _, g := range s.Except {
				if err := c.checkNodeRef(g, roles); err != nil {
					return c.errf("invariants."+k, g, "except: %v", err)
				}
			}
		case strings.TrimSpace(s.Off) == "":
			return c.errf("invariants."+k, "", "invariant %q: off needs the reason it is turned off (off = \"…\")", k)
		}
	}
	return nil
}

// checkResourceOrDelivery checks the keys of a resource or delivery
// expectation; ok is false for other types (nothing checked).
func (c checker) checkResourceOrDelivery(e *ExpectSpec, roles map[string]string) (bool, error) {
	switch e.Type {
	case ExpectResource:
		m := string(e.Metric)
		for _, v := range ResourceMetrics {
			if strings.EqualFold(v, m) {
				e.Metric = Metric(v)
				m = v
			}
		}
		if !contains(ResourceMetrics, m) {
			return true, c.errf("expect.metric", m, "a resource expectation needs metric (%s)", strings.Join(ResourceMetrics, ", "))
		}
		if e.Node == "" || strings.ContainsAny(e.Node, "*?[") {
			return true, c.errf("expect.node", e.Node, "a resource expectation needs one process (node), not a pattern")
		}
		if e.MaxGrowth == nil {
			return true, c.errf("expect.max_growth", "", "a resource expectation needs max_growth")
		}
	case ExpectDelivery:
		if err := checkEnum(c, "expect.delivery", &e.Delivery, "delivery", DeliveryModes); err != nil {
			return true, err
		}
		if e.Delivery == "" {
			return true, c.errf("expect.delivery", "", "a delivery expectation needs delivery (%s)", strings.Join(DeliveryModes, ", "))
		}
		if e.Channel == "" {
			return true, c.errf("expect.channel", "", "a delivery expectation needs channel")
		}
		found := false
		for _, n := range c.v.Scenario.Producers {
			found = found || n.Channel == e.Channel
		}
		if !found {
			return true, c.errf("expect.channel", e.Channel, "no producer writes channel %q", e.Channel)
		}
	default:
		if e.MaxGrowth != nil || e.Delivery != "" || e.Channel != "" {
			return true, c.errf("expect.type", string(e.Type), "max_growth belongs to resource, delivery and channel to delivery expectations")
		}
		return false, nil
	}
	return true, nil
}
