"""What every part shares: declared settings (flags, TOML, checks) and test crash points."""
