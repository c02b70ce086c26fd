"""HTTP plumbing every service uses: errors, request ids, metrics, health."""
