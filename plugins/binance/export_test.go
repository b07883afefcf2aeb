package binance

// SetSubscribeLimits makes connections put at most urlBytes of stream
// names in the URL and SUBSCRIBE the rest perMessage at a time, so that a
// test with a few streams goes through the SUBSCRIBE path. It returns the
// function that restores the limits.
func SetSubscribeLimits(urlBytes, perMessage int) (restore func()) {
	u, p := maxURLStreams, maxSubscribeBy
	maxURLStreams, maxSubscribeBy = urlBytes, perMessage
	return func() { maxURLStreams, maxSubscribeBy = u, p }
}
