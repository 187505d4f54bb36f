"""Reading a host, changing nothing: facts, state probes, queries, section scripts, and the
distribution strategies that say where things are."""
