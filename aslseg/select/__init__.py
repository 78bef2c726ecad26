"""Between rounds: score each pseudo-labeled slice, keep the reliable ones, and grow the labeled list."""
