"""The schedule: the weekly edition built ahead of its slot, approved (or not), and sent on
time, exactly once, whichever process wakes up for it (digest.schedule.due.run_due)."""
