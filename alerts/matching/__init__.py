"""Matching: watchlists compiled into one automaton (engine), search keys (text_keys),
the Hyperscan and pyahocorasick backends, and the query parser and evaluator."""
