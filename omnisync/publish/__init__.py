"""``omnisync publish``: feed and export channels written from canonical.

==============  =============================================================================
``settings``    the ``publish:`` block of a channel (:class:`PublishRules`)
``feed``        the stage: canonical → the channel's expected records → checked → written
``formats``     Google XML and TSV, Meta CSV, idealo CSV, CSV/JSON with chosen columns
``output``      the atomic, rewrite-only-when-changed feed file
==============  =============================================================================

Kept light (nothing imported here): the config's schema imports :mod:`.settings`.
"""
