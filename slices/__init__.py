"""What a network slice is: the intent, the per-kind profiles, and status conditions. No I/O."""
