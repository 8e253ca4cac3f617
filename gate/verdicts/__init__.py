"""The verdict vocabulary and statistics every check kind shares. Pure: no HTTP, no SQL."""
