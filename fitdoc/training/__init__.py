"""Training: data, the network, the one stacked engine, the run loop, the probe (imports TensorFlow only when called)."""
