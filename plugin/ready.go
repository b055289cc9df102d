package discovery

// Ready implements the ready plugin's Readiness: the handler can answer
// once the agent serves reads from its replica.
func (d *Discovery) Ready() bool {
	return d.Readiness == nil || d.Readiness()
}
