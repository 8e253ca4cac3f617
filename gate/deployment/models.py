"""The leader row: which API process runs the deployment's background loops (reaper, delivery sender)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gate.db import Base, UTCDateTime


class Leader(Base):
    __tablename__ = "leaders"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(200))  # host:pid:nonce of the process leading; None: free
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # on the database's clock
    term: Mapped[int] = mapped_column(Integer, default=0)  # +1 at each change of holder: the compare-and-swap
