"""The link budget: path loss, SNR, FDMA rates, compute profiles, payload bits (numpy only)."""
