"""The GNMT network: shared embedding, encoder, attention decoder."""
