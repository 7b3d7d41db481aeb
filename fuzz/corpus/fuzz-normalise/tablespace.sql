--
-- Name: x; Type: T; Schema: s; Owner: o; Tablespace: t
--

SET default_tablespace = t;
