"""One processor per training stage: conversations -> token ids and labels."""
