"""What the processes and hosts serving one deployment share: who runs the background loops (the leader)."""
