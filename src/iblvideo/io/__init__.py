"""Files in and out: the ALF session layout and every dataset name (``alf``), atomic writes, pose
tables of every format (``pose_formats``), ONE's records (``one``)."""
