"""When and how to engage: channel and send-time affinity, frequency, microsegments."""
