"""The conversation around a turn: what was shown and what the shopper means.

Read in order: :mod:`bot.turn.state` (what the conversation has shown and is about, derived from the
stored messages, so it survives a reload, a resume and a second replica), :mod:`bot.turn.understand`
(the shopper's act and the shown products it refers to), :mod:`bot.turn.answers` (the facts the server
writes from the catalog and the state, with the products as references). :mod:`bot.dialogue` runs the turn.
"""
