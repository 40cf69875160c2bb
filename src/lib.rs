//! optrail: the widget. See README.md.
