"""Saving: what reaches the disk and how it comes back.

`.keras` files with their metadata and the safe loader (`persistence`), training
checkpoints and resuming (`checkpoints`), and the write-then-rename helpers every
writer uses so that a crash never leaves half a file (`atomic`).
"""
