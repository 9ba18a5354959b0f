"""Other implementations timed beside ours; never imported by the srgan_tf package."""
