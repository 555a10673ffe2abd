"""What every part shares: declared settings (flags, TOML, checks), the seed's console
rule, saying an outage once, and the tests' named crash points."""
