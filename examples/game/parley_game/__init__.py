"""Game tables on Parley: `game:{table}` rooms, their events, a scores table and its REST route."""
